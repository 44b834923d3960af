"""Lending: credit lines, draws, schedules, daily interest, repayments, end of day, journal."""
