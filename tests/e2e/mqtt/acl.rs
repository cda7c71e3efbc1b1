//! The broker's ACLs are the second line behind each event's token: with the ACL file the
//! README shows (`deploy/mosquitto/eventplane.acl`), an application's publishes to another
//! application's topic never reach eventplane at all.

use std::time::Duration;

use eventplane_tests::mosquitto::Options;
use eventplane_tests::workspace_root;
use serde_json::json as j;

use super::{MqttShop, count, with_token};
use crate::gateway::order;

crate::e2e_test! {
    async fn the_documented_acl_keeps_each_application_to_its_own_topic() -> anyhow::Result<()> {
        let acl = std::fs::read_to_string(workspace_root().join("deploy/mosquitto/eventplane.acl"))?;
        let options = Options {
            users: vec![
                ("eventplane".to_owned(), "ep-secret".to_owned()),
                ("shop".to_owned(), "shop-secret".to_owned()),
            ],
            acl: Some(acl),
        };
        let env = [
            ("SPIN_VARIABLE_MQTT_USERNAME", "eventplane"),
            ("SPIN_VARIABLE_MQTT_PASSWORD", "ep-secret"),
        ];
        let Some(t) = MqttShop::start_on(&options, Some(("shop", "shop-secret")), &env, None).await? else {
            return Ok(());
        };
        let token = t.shop.token.clone();
        // On the shop's own topic: taken and delivered.
        t.publish(&with_token(order("acl-own"), &token)).await?;
        // On another application's topic: the broker drops it (MQTT 3.1.1 still acknowledges).
        t.publish_raw("eventplane/erp/events", with_token(order("acl-other"), &token).to_string().into_bytes())
            .await?;
        t.publish(&with_token(order("acl-own-2"), &token)).await?;
        let received = t.delivered(&["acl-own", "acl-own-2"], Duration::from_secs(20)).await?;
        assert_eq!(count(&received, "acl-other"), 0);
        // eventplane never saw it: nothing was refused either.
        let data = t
            .graphql("{ mqttRejectedMessages(application: \"erp\") { data { code } } }", j!({}))
            .await?;
        assert_eq!(data["mqttRejectedMessages"]["data"], j!([]), "{data}");
        t.stop().await
    }
}
