fn main() {
    for t in std::env::args().skip(1) {
        let t = t.replace("\\n", "\n");
        println!("{:?}\n  -> {:?}", t, resilience::redact(&t));
    }
}
