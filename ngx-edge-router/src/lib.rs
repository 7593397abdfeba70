//! Edge router nginx module (see issue: edge router).
