//! A visitor's consent state, as the tracker decides it and every batch
//! carries it: the one enum for the browser and the servers.

/// What the visitor chose (or has not yet): only `Granted` allows storage
/// and identifiers; the others truncate the IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Consent {
    Granted,
    Pending,
    Denied,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Granted => "granted",
            Consent::Pending => "pending",
            Consent::Denied => "denied",
        }
    }
}
