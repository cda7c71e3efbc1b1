use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use eventplane_registry_api::schema;

fn committed_schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema.graphql")
}

#[test]
fn the_committed_schema_matches_the_code() -> Result<()> {
    let sdl = schema().sdl();
    let path = committed_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &sdl).with_context(|| format!("writing {}", path.display()))?;
        return Ok(());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != sdl {
        bail!(
            "{} differs from the schema the code builds. If the change is intended, regenerate it \
             with `UPDATE_SCHEMA=1 cargo test -p eventplane-registry-api --test registry sdl` \
             and commit it.",
            path.display()
        );
    }
    Ok(())
}

#[test]
fn the_schema_speaks_the_directors_names() {
    let sdl = schema().sdl();
    for expected in [
        "applications(filter: [LabelFilter!], first: Int = 100, after: PageCursor): ApplicationPage!",
        "application(id: ID!): Application",
        "eventAPI(id: ID!): EventAPIDefinition",
        "createApplication(in: ApplicationInput!): Application!",
        "updateApplication(id: ID!, in: ApplicationInput!): Application!",
        "deleteApplication(id: ID!): Application",
        "addApplicationLabel(applicationID: ID!, key: String!, values: [String!]!): Label!",
        "deleteApplicationLabel(applicationID: ID!, key: String!, values: [String!]!): Label",
        "addApplicationWebhook(applicationID: ID!, in: ApplicationWebhookInput!): ApplicationWebhook!",
        "updateApplicationWebhook(webhookID: ID!, in: ApplicationWebhookInput!): ApplicationWebhook!",
        "deleteApplicationWebhook(webhookID: ID!): ApplicationWebhook",
        "addEventAPI(applicationID: ID!, in: EventAPIDefinitionInput!): EventAPIDefinition!",
        "updateEventAPI(id: ID!, in: EventAPIDefinitionInput!): EventAPIDefinition!",
        "deleteEventAPI(id: ID!): EventAPIDefinition",
        "eventAPIs(group: String, first: Int = 100, after: PageCursor): EventAPIDefinitionPage!",
        "eventingConfiguration: ApplicationEventingConfiguration!",
        "defaultURL: String!",
        "externalSubscriptions: [EventAPISubscription!]!",
        "events: [EventType!]!",
        "payloadSchema: CLOB",
        "spec: EventAPISpec!",
        "union CredentialData = BasicCredentialData | OAuthCredentialData",
        "interface Pageable",
        "type ApplicationPage implements Pageable",
        "type EventAPIDefinitionPage implements Pageable",
        "operator: FilterOperator = ALL",
        "eventSpecType: EventAPISpecType!",
        "tokenEndpointURL: String!",
        "mode: FetchMode = SINGLE",
        "scalar CLOB",
        "scalar Timestamp",
        "scalar Labels",
        "scalar HttpHeaders",
        "scalar QueryParams",
        "scalar PageCursor",
        "scalar EventAPISubscriptionAttributes",
    ] {
        assert!(
            sdl.contains(expected),
            "the schema lacks `{expected}`:\n{sdl}"
        );
    }
}
