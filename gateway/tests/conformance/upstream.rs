//! The upstream of the conformance suite: answers from the request so that tests can see exactly
//! what the gateway sent.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use taskmesh_contracts::google::api::HttpBody;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::pb::library_server::{Library, LibraryServer};
use crate::pb::{
    ArchiveShelfRequest, Book, BookEnvelope, CreateBookRequest, FailRequest, GetBookRequest,
    GetFileRequest, GetShelfRequest, SearchRequest, Shelf, StreamBooksRequest, UpdateBookRequest,
    UploadRequest, UploadResponse,
};

struct Upstream;

fn seen<T>(request: &Request<T>, response: &mut Response<impl Sized>) {
    for key in ["authorization", "x-request-id", "traceparent", "x-api-key"] {
        if let Some(value) = request.metadata().get(key) {
            response.metadata_mut().insert(
                format!("seen-{key}")
                    .parse::<tonic::metadata::MetadataKey<_>>()
                    .expect("key"),
                value.clone(),
            );
        }
    }
}

#[tonic::async_trait]
impl Library for Upstream {
    async fn get_book(&self, request: Request<GetBookRequest>) -> Result<Response<Book>, Status> {
        let name = request.get_ref().name.clone();
        if name.ends_with("/missing") {
            return Err(Status::with_error_details(
                Code::NotFound,
                format!("{name} not found"),
                ErrorDetails::with_error_info(
                    "RESOURCE_NOT_FOUND",
                    "taskmesh.dev",
                    [("resource".to_owned(), name)],
                ),
            ));
        }
        Ok(Response::new(Book {
            name,
            title: "The Book".into(),
            pages: 300,
            ..Default::default()
        }))
    }

    async fn get_shelf(
        &self,
        request: Request<GetShelfRequest>,
    ) -> Result<Response<Shelf>, Status> {
        if request.get_ref().shelf == "slow" {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let mut response = Response::new(Shelf {
            name: format!("shelves/{}", request.get_ref().shelf),
            archived: false,
            note: if request.get_ref().with_books {
                "with books".into()
            } else {
                String::new()
            },
        });
        seen(&request, &mut response);
        Ok(response)
    }

    async fn create_book(
        &self,
        request: Request<CreateBookRequest>,
    ) -> Result<Response<Book>, Status> {
        let request = request.into_inner();
        let book = request.book.unwrap_or_default();
        Ok(Response::new(Book {
            name: format!("{}/books/new", request.parent),
            ..book
        }))
    }

    async fn update_book(
        &self,
        request: Request<UpdateBookRequest>,
    ) -> Result<Response<Book>, Status> {
        let request = request.into_inner();
        let mut book = request.book.unwrap_or_default();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        book.tags = paths;
        Ok(Response::new(book))
    }

    async fn delete_book(&self, _request: Request<GetBookRequest>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }

    async fn archive_shelf(
        &self,
        request: Request<ArchiveShelfRequest>,
    ) -> Result<Response<Shelf>, Status> {
        let request = request.into_inner();
        Ok(Response::new(Shelf {
            name: request.name,
            archived: true,
            note: request.note,
        }))
    }

    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchRequest>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn echo(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchRequest>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn report(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchRequest>, Status> {
        let mut echoed = request.into_inner();
        echoed.query = format!("report:{}", echoed.query);
        Ok(Response::new(echoed))
    }

    async fn anonymous(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchRequest>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn get_file(
        &self,
        request: Request<GetFileRequest>,
    ) -> Result<Response<HttpBody>, Status> {
        Ok(Response::new(HttpBody {
            content_type: "text/plain; charset=utf-8".into(),
            data: format!("file:{}", request.get_ref().path).into_bytes(),
            extensions: vec![],
        }))
    }

    async fn upload(
        &self,
        request: Request<UploadRequest>,
    ) -> Result<Response<UploadResponse>, Status> {
        let request = request.into_inner();
        let data = request.data.unwrap_or_default();
        Ok(Response::new(UploadResponse {
            id: request.id,
            content_type: data.content_type,
            size: data.data.len() as i64,
        }))
    }

    async fn wrap_book(
        &self,
        request: Request<GetBookRequest>,
    ) -> Result<Response<BookEnvelope>, Status> {
        Ok(Response::new(BookEnvelope {
            book: Some(Book {
                name: request.into_inner().name,
                title: "Wrapped".into(),
                ..Default::default()
            }),
            served_by: "upstream".into(),
        }))
    }

    type StreamBooksStream = Pin<Box<dyn Stream<Item = Result<Book, Status>> + Send>>;

    async fn stream_books(
        &self,
        request: Request<StreamBooksRequest>,
    ) -> Result<Response<Self::StreamBooksStream>, Status> {
        let request = request.into_inner();
        let items: Vec<Result<Book, Status>> = (0..request.count)
            .map(|i| {
                if request.fail_after > 0 && i >= request.fail_after {
                    Err(Status::new(
                        Code::from_i32(request.fail_code),
                        "stream failed",
                    ))
                } else {
                    Ok(Book {
                        name: format!("{}/books/{i}", request.parent),
                        ..Default::default()
                    })
                }
            })
            .take_while_inclusive_ok()
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn fail(&self, request: Request<FailRequest>) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        let mut details = ErrorDetails::new();
        if !request.reason.is_empty() {
            details.set_error_info(
                request.reason,
                "taskmesh.dev",
                [("k".to_owned(), "v".to_owned())],
            );
        }
        if !request.field.is_empty() {
            details.add_bad_request_violation(request.field, "is wrong");
        }
        Err(Status::with_error_details(
            Code::from_i32(request.code),
            request.message,
            details,
        ))
    }
}

/// Stops after the first error.
trait TakeWhileInclusiveOk: Iterator + Sized {
    fn take_while_inclusive_ok(self) -> std::vec::IntoIter<Self::Item>;
}

impl<I, T> TakeWhileInclusiveOk for I
where
    I: Iterator<Item = Result<T, Status>>,
{
    fn take_while_inclusive_ok(self) -> std::vec::IntoIter<Self::Item> {
        let mut out = Vec::new();
        for item in self {
            let stop = item.is_err();
            out.push(item);
            if stop {
                break;
            }
        }
        out.into_iter()
    }
}

/// Starts the upstream on 127.0.0.1:0.
pub(crate) async fn spawn() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(LibraryServer::new(Upstream))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    addr
}
