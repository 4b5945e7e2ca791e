//! Placeholder, replaced by the policy entry points.
