//! Placeholder: the cache benchmark lands in the next commit.

fn main() {}
