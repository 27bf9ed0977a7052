package main

import "os"

// statsSignals make "greipsec up" log its counters: none on Windows.
var statsSignals []os.Signal
