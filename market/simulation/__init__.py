"""A simulated energy community (`manage.py simulate_community`): prosumers and households
whose trading agents trade a day of slots over the HTTP API, settled against their signed
readings. `community` sets the community up, `profiles` makes the meter data, `clock` and
`http` give the simulated time and the real HTTP server, `run` plays the day."""
