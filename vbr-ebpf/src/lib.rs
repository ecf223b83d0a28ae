//! Empty library target: vbr-userspace lists this crate as a build-dependency so that cargo
//! rebuilds it when the programs change; the programs themselves are the `vbr` binary.
#![no_std]
