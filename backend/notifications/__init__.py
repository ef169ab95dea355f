"""Notifications to passengers (issue 16): be-in, be-out and "still on board?", each at most
once, by Web Push and by the open app's event stream."""
