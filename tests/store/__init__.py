# Tests of guardbot.store.
