"""The pure decision core: plain functions over plain values, no I/O, no clock reads."""
