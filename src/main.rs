fn main() {
    for v in aoai_gateway::generated::API_VERSIONS {
        println!("{} {}", v.version, v.routes.len());
    }
}
