# The two commands (see README.md): `make run` and `make test`. Both set up what they need.
.PHONY: run test lint bench setup clean

VENV := .venv/bin

setup:
	@scripts/bootstrap.sh run

run:
	@scripts/bootstrap.sh run
	@$(VENV)/sscard terminal

test:
	@scripts/bootstrap.sh test
	@scripts/test.sh

lint:
	@scripts/bootstrap.sh test
	$(VENV)/ruff check .
	$(VENV)/mypy apdu card reader ledger terminal

bench:
	@scripts/bootstrap.sh test
	$(VENV)/python -m bench

clean:
	rm -rf .venv build *.egg-info .pytest_cache .mypy_cache .ruff_cache
