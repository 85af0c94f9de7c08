# guardbot test suite.
