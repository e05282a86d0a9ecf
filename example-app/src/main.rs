//! tonic-msgpack example: services, gateway and a client in one process.

fn main() {
    println!("tonic-msgpack example-app");
}
