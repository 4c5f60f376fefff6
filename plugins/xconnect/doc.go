// Package xconnect renders vppmesh's CrossConnect into two derived
// interfaces (<name>-a, <name>-b) and one L2 xconnect each way.
package xconnect
