# Two commands for a newcomer: `make run` (set up, then reproduce the 2010 paper's claims:
# quick experiments into $(RESULTS), then the report on the terminal and as HTML) and
# `make test` (set up, then run the whole test suite). Both are idempotent.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages the testbed needs (Mininet without Open vSwitch, iptables for NFQUEUE,
# the real applications the experiments drive: Apache httpd and wrk for web-server;
# clang/bpftool/libbpf-dev for the kernel's TCP-ENO program; chromium, headless, for the
# test that opens the report's HTML page; the autotools, a C compiler and the netfilter, libcap,
# OpenSSL and libpcap headers to build the reference tcpcrypt daemon in the interop test).
APT_PACKAGES := mininet iptables iperf3 tcpdump ethtool curl openssl iputils-ping python3-venv python3-dev \
	apache2 wrk clang bpftool libbpf-dev chromium \
	autoconf automake libtool make gcc pkg-config libnfnetlink-dev libnetfilter-queue-dev \
	libnetfilter-conntrack-dev libcap-dev libssl-dev libpcap-dev
INSTALLED := $(VENV)/.installed
# The TCP-ENO sock_ops program, built against this kernel's BTF (vmlinux.h is generated, never
# committed). A kernel without BTF gets a one-line note and no object; the rest still works.
BPF_DIR := build/bpf
BPF_OBJ := $(BPF_DIR)/eno.bpf.o
BPF_SRC := tcpcrypt/kernel/eno.bpf.c
RUN_FLAGS ?=
RESULTS ?= results/paper

.PHONY: setup apt bpf run test bench lint clean

setup: apt $(INSTALLED) bpf

bpf: apt
	@if [ ! -r /sys/kernel/btf/vmlinux ]; then \
	  echo "note: this kernel has no BTF (/sys/kernel/btf/vmlinux): the TCP-ENO kernel program is not built"; \
	elif [ ! -s $(BPF_OBJ) ] || [ $(BPF_SRC) -nt $(BPF_OBJ) ]; then \
	  mkdir -p $(BPF_DIR) && \
	  { [ -s $(BPF_DIR)/vmlinux.h ] || bpftool btf dump file /sys/kernel/btf/vmlinux format c > $(BPF_DIR)/vmlinux.h; } && \
	  clang -O2 -g -target bpf -Wall -I $(BPF_DIR) -c $(BPF_SRC) -o $(BPF_OBJ) && echo "built $(BPF_OBJ)"; \
	fi

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The venv is made from Debian's python so that Debian's mininet module is visible. The install
# also compiles tcpcrypt/native/*.c into one extension (gcc, python3-dev, libssl-dev; optional: without it
# the library uses its pure-Python key schedule and says so once).
$(INSTALLED): pyproject.toml setup.py $(wildcard tcpcrypt/native/*.c tcpcrypt/native/*.h)
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

run: setup
	TESTBED_LOCK_WAIT_S=$${TESTBED_LOCK_WAIT_S:-1800} $(VENV)/bin/testbed reproduce --out $(RESULTS) $(RUN_FLAGS)

test: setup
	$(PY) -m pytest

bench: setup
	$(VENV)/bin/testbed bench

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -f tcpcrypt/native/*.so
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
