//! Implements `fermyon:spin/variables@2.0.0`: a component reads the variables declared in its
//! `[component.<id>.variables]`, resolved at start-up from `[variables]` and `SPIN_VARIABLE_*`.

use crate::bindings::variables::{self, Error};
use crate::state::HostState;

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        use eventplane_manifest::variables::VariableError as E;
        let component = &self.component;
        Ok(component
            .variables
            .component(&component.id)
            .get(&name)
            .map_err(|e| match e {
                E::InvalidName(m) => Error::InvalidName(m),
                E::Undefined(m) => Error::Undefined(m),
                E::Provider(m) => Error::Provider(m),
                E::Other(m) => Error::Other(m),
            }))
    }
}
