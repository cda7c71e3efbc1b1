//! Random bytes from the operating system (`wasi:random` on `wasm32-wasip2`).

use eventplane_core::Error;

/// `N` bytes from the operating system's cryptographically secure generator.
pub(crate) fn bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|err| Error::internal(format!("the system random generator failed: {err}")))?;
    Ok(buf)
}
