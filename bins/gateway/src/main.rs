//! `tollgate-gateway`: the HTTP gateway (issue 6 fills this binary).

fn main() {
    eprintln!("tollgate-gateway is not built yet: see issue 6");
    std::process::exit(1);
}
