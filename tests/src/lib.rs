//! Whole-system tests live in `e2e/`: they start the real service and gateway
//! binaries as processes, logged in to Vault with their own AppRoles, and drive them through the
//! gateway over REST and gRPC. This library is empty on purpose.
