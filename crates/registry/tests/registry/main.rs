//! The registration API through `schema.execute`, over `MemoryStore`: one test binary, one
//! module per area.

mod applications;
mod cascade;
mod concurrency;
mod event_apis;
mod fetching;
mod mqtt;
mod outbox;
mod pagination;
mod sdl;
mod support;
mod tenancy;
mod validation;
mod webhooks;
