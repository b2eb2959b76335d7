from monitor.cli import main

# Guarded: the parser process is started with "spawn", which imports this module again.
if __name__ == "__main__":
    main()
