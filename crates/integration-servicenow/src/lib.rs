//! The servicenow integration.
