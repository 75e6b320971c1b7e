// Command m2m-sim runs the M2M API simulator (package m2m/m2mtest) as a
// process, for the demo, integration tests and benchmarks. It is thin: the
// server, its checks, faults and record live in m2mtest. Run it with
// --help for every flag and endpoint.
package main
