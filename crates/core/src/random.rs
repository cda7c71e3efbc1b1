//! Random bytes from the operating system (`wasi:random` on `wasm32-wasip2`), for secrets.

use crate::Error;

/// `N` bytes from the operating system's cryptographically secure generator; a failure of the
/// generator is a `500`.
pub fn bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|err| Error::internal(format!("the system random generator failed: {err}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_draws_differ() -> Result<(), crate::Error> {
        assert_ne!(super::bytes::<32>()?, super::bytes::<32>()?);
        Ok(())
    }
}
