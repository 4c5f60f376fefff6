// Package lab runs small topologies of real processes for end-to-end tests and
// demos: one network namespace per CNF (as containers are), unix sockets in a
// shared directory, captured logs, and a cleanup that always removes what it made.
package lab
