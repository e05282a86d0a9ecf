use tonic::Status;
use tonic::metadata::MetadataMap;
use tonic_msgpack::{ServerStream, Streaming, msgpack_service};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Item {
    pub name: String,
}

/// A user type with the name the macro would give the `One` method's request alias.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct OneRequest {
    pub id: u32,
}

/// Every method shape the macro accepts.
#[msgpack_service(package = "shop.v1", name = "Shop", format = "named")]
pub trait ShopService {
    async fn nothing(&self) -> Result<(), Status>;
    async fn one(&self, item: OneRequest) -> Result<Item, Status>;
    #[rpc(name = "Many", http = "GET /v1/many/{a}")]
    async fn several(&self, a: u8, b: String, c: Vec<Item>) -> Result<Option<Item>, Status>;
    async fn with_metadata(&self, metadata: &MetadataMap, id: u64) -> Result<u64, Status>;
    async fn upload(&self, items: Streaming<Item>) -> Result<u32, Status>;
    async fn list(&self, limit: u32) -> Result<ServerStream<Item>, Status>;
    async fn chat(&self, items: Streaming<Item>) -> Result<ServerStream<Item>, Status>;
    async fn array(&self, bytes: [u8; 4]) -> Result<(u8, u8), Status>;
}

fn assert_service<S: tonic::server::NamedService>() {}

fn main() {
    assert_service::<ShopServer<NoShop>>();
    assert_eq!(<ShopServer<NoShop> as tonic::server::NamedService>::NAME, "shop.v1.Shop");
    let _ = ShopClient::<tonic::transport::Channel>::SERVICE_NAME;
}

struct NoShop;

impl ShopService for NoShop {
    async fn nothing(&self) -> Result<(), Status> {
        Ok(())
    }
    async fn one(&self, item: OneRequest) -> Result<Item, Status> {
        Ok(Item { name: item.id.to_string() })
    }
    async fn several(&self, _a: u8, _b: String, c: Vec<Item>) -> Result<Option<Item>, Status> {
        Ok(c.into_iter().next())
    }
    async fn with_metadata(&self, _metadata: &MetadataMap, id: u64) -> Result<u64, Status> {
        Ok(id)
    }
    async fn upload(&self, _items: Streaming<Item>) -> Result<u32, Status> {
        Ok(0)
    }
    async fn list(&self, _limit: u32) -> Result<ServerStream<Item>, Status> {
        Err(Status::unimplemented("list"))
    }
    async fn chat(&self, _items: Streaming<Item>) -> Result<ServerStream<Item>, Status> {
        Err(Status::unimplemented("chat"))
    }
    async fn array(&self, bytes: [u8; 4]) -> Result<(u8, u8), Status> {
        Ok((bytes[0], bytes[3]))
    }
}
