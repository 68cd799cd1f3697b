#!/usr/bin/env bash
STRATEGY=cooperative-sticky
source "$(dirname "$0")/rebalance_body.sh"
