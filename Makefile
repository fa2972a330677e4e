# The two commands a newcomer needs (see README.md).
.PHONY: run test plugins

## Build everything (toolchains included) and run the portal with the shipped plugins on SQLite.
run:
	scripts/run.sh

## Run the whole test suite, lints included, as CI does.
test:
	scripts/test.sh

## Build only the plugins (Rust, Python, JavaScript, C), the test fixtures and the SDK templates into target/plugins and target/fixtures.
plugins:
	scripts/build-plugins.sh --fixtures
