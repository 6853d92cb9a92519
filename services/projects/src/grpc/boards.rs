//! `taskmesh.projects.v1.BoardService`: boards and their columns.

use taskmesh_contracts::projects_v1::Role;
use taskmesh_contracts::projects_v1::board_service_server::BoardService;
use taskmesh_contracts::projects_v1::{
    Board, Column, CreateBoardRequest, CreateColumnRequest, DeleteBoardRequest,
    DeleteColumnRequest, GetBoardRequest, GetColumnRequest, ListBoardsRequest, ListBoardsResponse,
    ListColumnsRequest, ListColumnsResponse, MoveColumnRequest, UndeleteBoardRequest,
    UpdateBoardRequest, UpdateColumnRequest,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use tonic::{Request, Response, Status};

use super::{name_changes, required, resource_id};
use crate::domain::rules;
use crate::domain::{BoardName, ColumnName, ProjectName};
use crate::store::Store;
use crate::store::boards::NewBoard;
use crate::store::columns::{ColumnChanges, NewColumn};

/// Handles board and column RPCs.
#[derive(Debug, Clone)]
pub struct BoardsService {
    store: Store,
}

impl BoardsService {
    /// Handlers over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl BoardService for BoardsService {
    async fn create_board(
        &self,
        request: Request<CreateBoardRequest>,
    ) -> Result<Response<Board>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = ProjectName::parse("parent", &request.parent)?;
        self.store
            .require(&context, &parent.project, Role::Admin)
            .await?;
        let board = request.board.ok_or_else(|| required("board"))?;
        let new = NewBoard {
            parent,
            id: resource_id(&request.board_id),
            display_name: rules::display_name(&board.display_name),
            description: board.description,
            request_id: aip::request_id(&request.request_id),
        };
        self.store
            .create_board(&context, new)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn get_board(
        &self,
        request: Request<GetBoardRequest>,
    ) -> Result<Response<Board>, Status> {
        let context = CallContext::of(&request);
        let name = BoardName::parse("name", &request.get_ref().name)?;
        self.store
            .require(&context, &name.project, Role::Viewer)
            .await?;
        self.store
            .get_board(&name)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn list_boards(
        &self,
        request: Request<ListBoardsRequest>,
    ) -> Result<Response<ListBoardsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = ProjectName::parse("parent", &request.parent)?;
        self.store
            .require(&context, &parent.project, Role::Viewer)
            .await?;
        let (boards, next_page_token) = self
            .store
            .list_boards(
                &parent,
                &request.filter,
                &request.order_by,
                request.show_deleted,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(ListBoardsResponse {
            boards,
            next_page_token,
        }))
    }

    async fn update_board(
        &self,
        request: Request<UpdateBoardRequest>,
    ) -> Result<Response<Board>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let board = request.board.ok_or_else(|| required("board"))?;
        let name = BoardName::parse("board.name", &board.name)?;
        self.store
            .require(&context, &name.project, Role::Admin)
            .await?;
        let (changes, paths) = name_changes(
            &board.display_name,
            &board.description,
            request.update_mask.as_ref(),
        )?;
        self.store
            .update_board(&context, &name, &board.etag, changes, paths)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn delete_board(
        &self,
        request: Request<DeleteBoardRequest>,
    ) -> Result<Response<Board>, Status> {
        let context = CallContext::of(&request);
        let name = BoardName::parse("name", &request.get_ref().name)?;
        self.store
            .require(&context, &name.project, Role::Admin)
            .await?;
        self.store
            .delete_board(&context, &name, &request.get_ref().etag)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn undelete_board(
        &self,
        request: Request<UndeleteBoardRequest>,
    ) -> Result<Response<Board>, Status> {
        let context = CallContext::of(&request);
        let name = BoardName::parse("name", &request.get_ref().name)?;
        self.store
            .require(&context, &name.project, Role::Admin)
            .await?;
        self.store
            .undelete_board(&context, &name, &request.get_ref().etag)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn create_column(
        &self,
        request: Request<CreateColumnRequest>,
    ) -> Result<Response<Column>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = BoardName::parse("parent", &request.parent)?;
        self.store
            .require(&context, &parent.project, Role::Admin)
            .await?;
        let column = request.column.ok_or_else(|| required("column"))?;
        let new = NewColumn {
            parent,
            id: resource_id(&request.column_id),
            display_name: rules::display_name(&column.display_name),
            kind: rules::column_kind(column.kind),
            request_id: aip::request_id(&request.request_id),
        };
        self.store
            .create_column(&context, new)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn get_column(
        &self,
        request: Request<GetColumnRequest>,
    ) -> Result<Response<Column>, Status> {
        let context = CallContext::of(&request);
        let name = ColumnName::parse("name", &request.get_ref().name)?;
        self.store
            .require(&context, &name.project, Role::Viewer)
            .await?;
        self.store
            .get_column(&name)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn list_columns(
        &self,
        request: Request<ListColumnsRequest>,
    ) -> Result<Response<ListColumnsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = BoardName::parse("parent", &request.parent)?;
        self.store
            .require(&context, &parent.project, Role::Viewer)
            .await?;
        let (columns, next_page_token) = self
            .store
            .list_columns(
                &parent,
                &request.filter,
                &request.order_by,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(ListColumnsResponse {
            columns,
            next_page_token,
        }))
    }

    async fn update_column(
        &self,
        request: Request<UpdateColumnRequest>,
    ) -> Result<Response<Column>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let column = request.column.ok_or_else(|| required("column"))?;
        let name = ColumnName::parse("column.name", &column.name)?;
        self.store
            .require(&context, &name.project, Role::Admin)
            .await?;
        let paths = aip::update_paths(request.update_mask.as_ref(), &["display_name", "kind"])?;
        let mut changes = ColumnChanges::default();
        for path in &paths {
            match *path {
                "display_name" => {
                    changes.display_name = Some(rules::display_name(&column.display_name));
                }
                "kind" => changes.kind = Some(rules::column_kind(column.kind)),
                _ => {}
            }
        }
        self.store
            .update_column(&context, &name, &column.etag, changes, paths)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn delete_column(
        &self,
        request: Request<DeleteColumnRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        let name = ColumnName::parse("name", &request.get_ref().name)?;
        self.store
            .require(&context, &name.project, Role::Admin)
            .await?;
        self.store
            .delete_column(&context, &name, &request.get_ref().etag)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn move_column(
        &self,
        request: Request<MoveColumnRequest>,
    ) -> Result<Response<Column>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let name = ColumnName::parse("name", &request.name)?;
        self.store
            .require(&context, &name.project, Role::Admin)
            .await?;
        self.store
            .move_column(&context, &name, request.position, &request.etag)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }
}
