"""Indian names, places and languages the simulator draws from."""

from __future__ import annotations

FIRST_NAMES_FEMALE = [
    "Priya", "Anjali", "Sneha", "Pooja", "Neha", "Divya", "Kavya", "Meera", "Lakshmi", "Sunita",
    "Aishwarya", "Deepa", "Fatima", "Gurpreet", "Harini", "Ishita", "Jyoti", "Kiran", "Lata",
    "Madhuri", "Nandini", "Pallavi", "Rekha", "Sakshi", "Shalini", "Swati", "Tanvi", "Usha",
    "Vidya", "Zoya", "Bhavana", "Chitra", "Durga", "Geeta", "Radha", "Savitri", "Shreya",
]  # fmt: skip
FIRST_NAMES_MALE = [
    "Rahul", "Amit", "Vikram", "Arjun", "Rohan", "Suresh", "Ramesh", "Rajesh", "Sanjay", "Anil",
    "Abhishek", "Deepak", "Farhan", "Gaurav", "Harish", "Imran", "Jagdish", "Karthik", "Manoj",
    "Naveen", "Pradeep", "Rakesh", "Sachin", "Sandeep", "Srinivas", "Tarun", "Varun", "Vijay",
    "Yash", "Aditya", "Balaji", "Chetan", "Dinesh", "Ganesh", "Kunal", "Mohan", "Nitin",
]  # fmt: skip
LAST_NAMES = [
    "Sharma", "Verma", "Gupta", "Singh", "Patel", "Shah", "Mehta", "Joshi", "Kulkarni",
    "Deshmukh", "Patil", "Iyer", "Iyengar", "Nair", "Menon", "Pillai", "Reddy", "Rao", "Naidu",
    "Chowdhury", "Banerjee", "Mukherjee", "Das", "Bose", "Ghosh", "Khan", "Ansari", "Sheikh",
    "Gill", "Sandhu", "Kaur", "Yadav", "Mishra", "Tiwari", "Pandey", "Chauhan", "Rathore",
    "Jain", "Agarwal", "Bhat", "Hegde", "Shetty", "Gowda", "Murthy", "Krishnan", "Subramanian",
]  # fmt: skip

# Nine Indian languages plus English (ISO 639-1), the languages the app ships in.
LANGUAGES = ["en", "hi", "bn", "te", "mr", "ta", "gu", "kn", "ml", "pa"]

# state -> (main language, cities with a pincode prefix, relative weight by insured population)
STATES: dict[str, tuple[str, list[tuple[str, str]], float]] = {
    "Maharashtra": ("mr", [("Mumbai", "400"), ("Pune", "411"), ("Nagpur", "440")], 14.0),
    "Uttar Pradesh": ("hi", [("Lucknow", "226"), ("Kanpur", "208"), ("Varanasi", "221")], 12.0),
    "West Bengal": ("bn", [("Kolkata", "700"), ("Siliguri", "734")], 8.0),
    "Tamil Nadu": ("ta", [("Chennai", "600"), ("Coimbatore", "641"), ("Madurai", "625")], 9.0),
    "Karnataka": ("kn", [("Bengaluru", "560"), ("Mysuru", "570"), ("Hubballi", "580")], 8.0),
    "Gujarat": ("gu", [("Ahmedabad", "380"), ("Surat", "395"), ("Vadodara", "390")], 7.0),
    "Telangana": ("te", [("Hyderabad", "500"), ("Warangal", "506")], 5.0),
    "Andhra Pradesh": ("te", [("Visakhapatnam", "530"), ("Vijayawada", "520")], 5.0),
    "Kerala": ("ml", [("Kochi", "682"), ("Thiruvananthapuram", "695")], 5.0),
    "Punjab": ("pa", [("Ludhiana", "141"), ("Amritsar", "143")], 3.0),
    "Rajasthan": ("hi", [("Jaipur", "302"), ("Jodhpur", "342")], 6.0),
    "Madhya Pradesh": ("hi", [("Indore", "452"), ("Bhopal", "462")], 5.0),
    "Delhi": ("hi", [("New Delhi", "110")], 6.0),
    "Bihar": ("hi", [("Patna", "800")], 4.0),
}

PROVIDERS: list[tuple[str, str, str]] = [  # code, name, type
    ("LIC", "Life Insurance Corporation of India", "life"),
    ("HDFC_LIFE", "HDFC Life Insurance Company", "life"),
    ("ICICI_PRU", "ICICI Prudential Life Insurance", "life"),
    ("SBI_LIFE", "SBI Life Insurance Company", "life"),
    ("STAR_HEALTH", "Star Health and Allied Insurance", "health"),
    ("NIVA_BUPA", "Niva Bupa Health Insurance", "health"),
]
# Market share by provider (LIC dominates individual life business).
PROVIDER_WEIGHTS = [0.55, 0.12, 0.1, 0.1, 0.08, 0.05]

VIDEO_CATEGORIES = [
    "term_basics", "tax_saving", "claims", "retirement", "child_education", "health_cover",
    "ulip_explained", "premium_payment", "policy_revival", "nominee_update",
]  # fmt: skip
