//! `tollgate-aggregator`: statistics CLI and daemon (issue 5 fills this binary).

fn main() {
    eprintln!("tollgate-aggregator is not built yet: see issue 5");
    std::process::exit(1);
}
