//! Concurrent creates: the tenant's index is updated with compare-and-swap (and created by one
//! elected writer), so no subscription is lost.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::{Api, ids};
use crate::e2e_test;
use crate::registry::Registry;

e2e_test! {
    async fn thirty_two_parallel_creates_are_all_listed() -> anyhow::Result<()> {
        const COUNT: usize = 32;
        let r = Registry::start().await?;
        for api in [Api::new(&r.app), Api::new(&r.app).as_tenant("acme")] {
            let start = Arc::new(tokio::sync::Barrier::new(COUNT));
            let mut tasks = JoinSet::new();
            for i in 0..COUNT {
                let (api, start) = (api.clone(), start.clone());
                tasks.spawn(async move {
                    start.wait().await;
                    api.create_named(&format!("s{i:02}")).await
                });
            }
            let mut created = HashSet::new();
            while let Some(done) = tasks.join_next().await {
                created.insert(done??);
            }
            assert_eq!(created.len(), COUNT);
            let listed = ids(&api.list("?limit=200").await?);
            assert_eq!(listed.len(), COUNT, "{listed:?}");
            assert_eq!(listed.into_iter().collect::<HashSet<_>>(), created);
        }
        r.stop().await
    }
}
