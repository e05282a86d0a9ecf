//! Generated types of the end-to-end proto tests.
