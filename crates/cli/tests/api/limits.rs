//! Rate limits are on by default: with no limit configured, a server refuses a flood
//! from one client address, and one for one integration, with 429.

use jwtgrant_server::config::{DEFAULT_RATE_LIMIT_PER_CLIENT, DEFAULT_RATE_LIMIT_PER_INTEGRATION};
use jwtgrant_server::error::TokenEndpointError;

use crate::support::*;

#[tokio::test]
async fn rate_limits_are_on_by_default() {
    let server = TestServer::start().await;
    let config = &server.state.config;
    assert_eq!(
        (
            config.rate_limit_per_client,
            config.rate_limit_per_integration
        ),
        (
            DEFAULT_RATE_LIMIT_PER_CLIENT,
            DEFAULT_RATE_LIMIT_PER_INTEGRATION
        )
    );
    // The limiter this server counts with: a second's worth of requests (plus what
    // refills while they are counted) goes through, then one is refused.
    for (kind, id, limit) in [
        ("client", "192.0.2.1", config.rate_limit_per_client),
        ("integration", "flood", config.rate_limit_per_integration),
    ] {
        let key = format!("{kind}:{id}");
        assert!(limit > 0, "{key}: no limit by default");
        let mut allowed = 0_u64;
        let refused = loop {
            match server.state.rate_limit(kind, id, limit).await {
                Ok(()) => allowed += 1,
                Err(error) => break error,
            }
            assert!(
                allowed <= 4 * u64::from(limit),
                "{key}: {allowed} requests allowed at once"
            );
        };
        assert!(
            matches!(refused, TokenEndpointError::RateLimited { .. }),
            "{key}: {refused:?}"
        );
        assert!(
            allowed >= u64::from(limit),
            "{key}: refused after {allowed}"
        );
    }
}
