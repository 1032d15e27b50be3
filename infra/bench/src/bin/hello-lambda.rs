//! The reference for cold start: a hello-world `lambda_http` function built with the same
//! profile as ours.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(|_req: lambda_http::Request| async {
        Ok::<_, std::convert::Infallible>(lambda_http::Response::new(lambda_http::Body::from("hello")))
    }))
    .await
}
