"""Exercise checks, one module per chapter (``ch01``, ``ch02``, ...).

A check calls the learner's answer on inputs it makes itself, compares the result with the
package's reference, and either prints one stable line (``✓ Exercise 2.1: ...``) or raises an
``AssertionError`` that says, in the learner's terms, what is wrong. Known mistakes (softmax
over the wrong axis, a missing scale, ...) are recognised by recomputing them and comparing.
"""
