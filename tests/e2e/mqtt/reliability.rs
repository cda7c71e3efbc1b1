//! Nothing published at QoS 1 is lost: not across a broker restart (the trigger reconnects and
//! subscribes again), and not when the component fails on a message (here: its store, Redis,
//! is down), which the trigger then leaves unacknowledged so that the broker delivers it again.

use std::time::Duration;

use eventplane_tests::redis::RedisServer;

use super::{MqttShop, count, with_token};
use crate::gateway::order;

crate::e2e_test! {
    async fn a_broker_restart_loses_nothing_published_at_qos_1() -> anyhow::Result<()> {
        let Some(mut t) = MqttShop::start(&[], None).await? else {
            return Ok(());
        };
        let token = t.shop.token.clone();
        let before: Vec<String> = (0..5).map(|n| format!("before-{n}")).collect();
        for id in &before {
            t.publish(&with_token(order(id), &token)).await?;
        }
        let ids: Vec<&str> = before.iter().map(String::as_str).collect();
        t.delivered(&ids, Duration::from_secs(20)).await?;

        // The broker goes away and comes back (its persistence keeps sessions).
        t.broker.stop();
        tokio::time::sleep(Duration::from_millis(500)).await;
        t.broker.start_again()?;
        t.client.wait_connected(2, Duration::from_secs(20)).await?;

        // Published right after the restart, while the trigger may still be reconnecting:
        // the broker keeps them for its session and hands them over when it is back.
        let after: Vec<String> = (0..30).map(|n| format!("after-{n}")).collect();
        for id in &after {
            t.publish(&with_token(order(id), &token)).await?;
        }
        let ids: Vec<&str> = after.iter().map(String::as_str).collect();
        let received = t.delivered(&ids, Duration::from_secs(60)).await?;
        for id in before.iter().chain(&after) {
            assert_eq!(count(&received, id), 1, "{id} delivered once");
        }
        t.stop().await
    }
}

crate::e2e_test! {
    async fn a_message_the_component_fails_on_is_delivered_again_not_lost() -> anyhow::Result<()> {
        let Some(mut redis) = RedisServer::start()? else {
            return Ok(());
        };
        let config = tempfile::tempdir()?;
        let config = redis.runtime_config(config.path())?;
        let Some(t) = MqttShop::start(&[], Some(&config)).await? else {
            return Ok(());
        };
        let token = t.shop.token.clone();
        t.publish(&with_token(order("first"), &token)).await?;
        t.delivered(&["first"], Duration::from_secs(20)).await?;

        // The store goes down: the component cannot store the next event and fails, so the
        // trigger does not acknowledge it.
        redis.stop();
        t.publish(&with_token(order("while-down"), &token)).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(count(&t.subscriber.received(), "while-down"), 0);

        // The store is back: the broker delivers the message again and it goes through.
        redis.start_again()?;
        let received = t.delivered(&["while-down"], Duration::from_secs(60)).await?;
        assert_eq!(count(&received, "while-down"), 1);
        assert_eq!(count(&received, "first"), 1);
        t.stop().await
    }
}
