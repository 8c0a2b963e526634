/*! ringpath tracker — rp.js loads rp.wasm from its own directory. */
(function () {
