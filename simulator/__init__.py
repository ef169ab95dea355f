"""bibo simulator: network, timetable, people, BLE radio, ground truth and scoring."""
