// Package bench holds Tact's end-to-end benchmarks: a real tactd server on
// loopback, called over gRPC and REST as the agent desktop and web apps do.
// Run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// The load generator against the bare gRPC and HTTP ceilings comes with the
// benchmark-harness issue; figures are in the README.
package bench
