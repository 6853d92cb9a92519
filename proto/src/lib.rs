//! taskmesh's contracts: the Rust code generated from every `.proto` under `proto/`, one module per
//! protobuf package, and [`FILE_DESCRIPTOR_SET`], the encoded descriptors of all of them (imports and
//! custom options such as `google.api.http` included) for reflection, the gateway and codegen checks.

/// The encoded `google.protobuf.FileDescriptorSet` of every taskmesh contract and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// Google API annotations (`google.api.*`) and error model (`google.rpc.*`), written here
/// wire-compatible with Google's.
pub mod google {
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
    }
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// taskmesh bounded contexts, one module per versioned package.
pub mod taskmesh {
    /// The identity context: users, sessions, API keys and signing keys.
    pub mod identity {
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskmesh.identity.v1.rs"));
        }
    }
    /// The projects context: organizations, projects, boards, columns and members.
    pub mod projects {
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskmesh.projects.v1.rs"));
        }
    }
    /// The bookings context: appointments with providers (so far the events the marketplace
    /// learns completed bookings from).
    pub mod bookings {
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskmesh.bookings.v1.rs"));
        }
    }
    /// The execution context: runs of the jobs tasks carry.
    pub mod execution {
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskmesh.execution.v1.rs"));
        }
    }
    /// The marketplace context: providers, categories, listings, their search, reviews.
    pub mod marketplace {
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskmesh.marketplace.v1.rs"));
        }
    }
    /// The notes context: Markdown notes, their links, shares and search.
    pub mod notes {
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskmesh.notes.v1.rs"));
        }
    }
    /// The notifications context: inboxes, their real-time stream, preferences and webhooks.
    pub mod notifications {
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskmesh.notifications.v1.rs"));
        }
    }
    /// The scheduler context: schedules, their occurrences, reminders.
    pub mod scheduler {
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskmesh.scheduler.v1.rs"));
        }
    }
    /// The tasks context: event-sourced tasks, comments, work logs and activity.
    pub mod tasks {
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskmesh.tasks.v1.rs"));
        }
    }
}

pub use taskmesh::bookings::v1 as bookings_v1;
pub use taskmesh::execution::v1 as execution_v1;
pub use taskmesh::identity::v1 as identity_v1;
pub use taskmesh::marketplace::v1 as marketplace_v1;
pub use taskmesh::notes::v1 as notes_v1;
pub use taskmesh::notifications::v1 as notifications_v1;
pub use taskmesh::projects::v1 as projects_v1;
pub use taskmesh::scheduler::v1 as scheduler_v1;
pub use taskmesh::tasks::v1 as tasks_v1;
