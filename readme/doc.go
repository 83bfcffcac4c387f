// Package readme holds the README's test: every shell command of the
// README, in order, as a new user would type it (see readme_test.go).
package readme
