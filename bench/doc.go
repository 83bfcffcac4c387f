// Package bench holds Tact's end-to-end benchmarks: a real tactd server on
// loopback, called over gRPC and REST as the agent desktop and web apps do.
// Run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// BenchmarkDecideBufconn runs the whole server in process over an in-memory
// listener beside a bare grpc-go echo. The load generator against the bare
// gRPC and HTTP ceilings is cmd/tactload; figures are in BENCHMARKS.md.
package bench
