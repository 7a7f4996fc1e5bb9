"""The program in the window: its panel (monitors, Take / Fade / Slate, picture-in-picture,
destinations, the control token) and the words it and the sessions table use."""
