// Core reads `globalThis.crypto`; workers-types declare `crypto` as a global const, which is not a property
// of `typeof globalThis`. This declares it as one too (a .d.ts: the duplicate is not reported).
declare var crypto: Crypto
