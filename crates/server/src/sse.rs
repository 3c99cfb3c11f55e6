//! Server-sent-event framing: where an event ends and what its `data:` lines hold. Both the
//! first-event check of a stream (`upstream`) and the relay (`relay`) read events this way.

/// The `data:` lines of one event joined by newlines; `None` when it has none.
pub(crate) fn event_data(event: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            let data = data.get_or_insert_with(Vec::new);
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(value);
        }
    }
    data
}

/// The end of the first complete event (before its blank line) and the start of the next.
pub(crate) fn event_boundary(buffer: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buffer.len() {
        if buffer[i] == b'\n' {
            let mut j = i + 1;
            if buffer.get(j) == Some(&b'\r') {
                j += 1;
            }
            if buffer.get(j) == Some(&b'\n') {
                return Some((i, j + 1));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{event_boundary, event_data};

    #[test]
    fn boundaries_accept_lf_and_crlf() {
        assert_eq!(event_boundary(b"data: 1\n\ndata: 2"), Some((7, 9)));
        assert_eq!(event_boundary(b"data: 1\r\n\r\n"), Some((8, 11)));
        assert_eq!(event_boundary(b"data: 1\n"), None);
    }

    #[test]
    fn data_lines_are_joined() {
        assert_eq!(
            event_data(b"event: x\ndata: a\r\ndata:b"),
            Some(b"a\nb".to_vec())
        );
        assert_eq!(event_data(b"event: ping"), None);
    }
}
