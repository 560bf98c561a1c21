// Command mcpgw-testserver is the test server of package testserver as a
// standalone binary. Built with CGO_ENABLED=0 it is static, so the
// container tests put it alone in an image FROM scratch.
package main

import (
	"os"

	"github.com/mcpgw/mcpgw/internal/testserver"
)

func main() { os.Exit(testserver.Main()) }
