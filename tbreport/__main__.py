from tbreport.cli import main

main()
