//! Nothing to build: this package only pins the `nginx-src` source.
