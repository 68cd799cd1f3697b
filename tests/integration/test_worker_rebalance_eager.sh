#!/usr/bin/env bash
STRATEGY=range
source "$(dirname "$0")/rebalance_body.sh"
